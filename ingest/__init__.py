"""Ingest: expand playlists with yt-dlp and download their audio into the catalogue."""
