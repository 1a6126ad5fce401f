"""``python -m otel_mlmon.demo``: the same job as ``otel-mlmon demo``."""

from otel_mlmon.demo.job import main

raise SystemExit(main())
