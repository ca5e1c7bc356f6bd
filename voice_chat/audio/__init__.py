"""Audio building blocks: PCM conversion and resampling, voice activity, WORLD DSP."""
