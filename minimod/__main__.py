import sys

from minimod.cli import main

sys.exit(main())
