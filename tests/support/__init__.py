"""Helpers shared by the test modules (no test module imports another).

Their ``assert`` statements are rewritten by pytest as a test module's are, so a failing
helper such as ``assert_one_line_error`` shows the values it compared.
"""

import pytest

pytest.register_assert_rewrite("tests.support")
