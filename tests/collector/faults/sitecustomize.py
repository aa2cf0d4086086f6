"""Test-only fault injection for a collector subprocess: put this folder on PYTHONPATH and set
RAGTRAIL_TEST_FAULT. Nothing in the product reads that variable; the redactor is patched from outside.

    raise  redact_patterns.find raises (quoting the text, as a careless library might) on texts
           holding FAULT_TRIGGER
    stall  it sleeps past the batch's time budget on those texts
"""

import os
import time

FAULT_TRIGGER = "FAULT-CANARY"

_mode = os.environ.get("RAGTRAIL_TEST_FAULT")
if _mode:
    from ragtrail.collector import redact_patterns

    _find = redact_patterns.find

    def find(text, *args, **kwargs):
        if FAULT_TRIGGER in text:
            if _mode == "raise":
                raise RuntimeError(f"detector crashed on {text!r}")
            time.sleep(float(os.environ.get("RAGTRAIL_TEST_FAULT_SECONDS", "1.0")))
        return _find(text, *args, **kwargs)

    redact_patterns.find = find
