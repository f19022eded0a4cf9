from clipsearch.cli import main

raise SystemExit(main())
