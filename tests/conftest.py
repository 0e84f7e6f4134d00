import os
import sys

# entrypoint.py lives at the repository root and is not a package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
