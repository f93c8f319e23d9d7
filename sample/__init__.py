"""The built-in sample: music21 corpus pieces rendered with FluidSynth and served on loopback as a podcast feed.

The demo, the tests and the benches use it as a stand-in for a YouTube playlist: yt-dlp's
generic extractor reads an RSS feed with ``<enclosure>`` links as a playlist.
"""
