from iotrace.cli import entry

entry()
