import pytest

# The helpers in tests/support assert like test modules: let pytest rewrite their asserts
# too, so a failing helper (assert_one_line_error, ...) shows the values it compared.
pytest.register_assert_rewrite("tests.support")
