"""Push-to-talk terminal client for the realtime protocol (``voice-chat talk``).

Modules:

* ``cli``        – ``register(subparsers)``: the ``talk`` and ``devices`` subcommands
* ``connection`` – websocket connection, URL building, client event builders, errors
* ``pcm``        – PCM16/float conversion, WAV files, streaming resampling, level meter
* ``devices``    – PortAudio device listing and ``--input-device``/``--output-device`` lookup
* ``audio_io``   – sounddevice capture and playback (jitter buffer) at the device's rate
* ``ptt``        – push-to-talk key state machine (hold with auto-repeat, or toggle)
* ``controller`` – the conversation as the client sees it: state, barge-in, reconnects
* ``tui``        – the prompt_toolkit terminal UI
* ``filemode``   – scripted mode (``--input-file``/``--output-file``/``--text``/``--say``)
"""
