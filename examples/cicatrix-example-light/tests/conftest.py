"""The driver kit's contract assertions show their values when they fail: pytest rewrites asserts only in modules it is
told of before they are imported (docs/writing-a-driver.md, "Testing")."""

import pytest

pytest.register_assert_rewrite("drivers.testing")
