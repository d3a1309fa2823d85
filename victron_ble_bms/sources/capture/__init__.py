"""Capture files: our JSON-lines format, btsnoop, pcap and pcapng."""
