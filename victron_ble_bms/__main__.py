import sys

from victron_ble_bms.cli import main

sys.exit(main())
