"""Generate: sample token sequences, arrange them for a band, render them to MP3."""
