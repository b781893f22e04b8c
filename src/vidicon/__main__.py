from vidicon.cli import main

raise SystemExit(main())
