"""What every router shares: rendering (page or `_partial`), security, error mapping, SSE, streamed uploads."""
