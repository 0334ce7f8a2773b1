import sys

from budo.cli import main

sys.exit(main())
