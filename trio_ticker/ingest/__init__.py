"""How ticks reach the hub: from sources in this process, or through Redis (`scaleout`)."""
