"""Media for the AI dialogue: the mod_audio_fork WebSocket server, one audio pipeline per
call (VAD → turn-taking → ASR), barge-in, and the early-media hook."""
