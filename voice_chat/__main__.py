from voice_chat.cli.main import main

raise SystemExit(main())
