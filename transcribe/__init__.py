"""Transcribe: audio to MIDI with basic-pitch, then analyse each piece and decide whether to keep it."""
