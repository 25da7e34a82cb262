"""Set before scipy and scikit-learn are imported: without it scikit-learn skips its array API
input check (check_array_api_input) rather than run it."""
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")
