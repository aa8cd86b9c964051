import sys

from avkd.cli.main import main

sys.exit(main())
