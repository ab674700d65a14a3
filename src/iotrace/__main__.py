import sys

from iotrace.cli import main

sys.exit(main())
