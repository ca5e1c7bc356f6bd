from voice_chat.cli import main

raise SystemExit(main())
