"""The version, written once here; the packaging metadata is generated from it.

``pyproject.toml`` declares the version dynamic and setuptools reads this literal (httpx keeps its
``__version__.py`` the same way), so the installed metadata and ``__version__`` cannot disagree
(``tests/test_package_api.py`` checks it). Reading it back with ``importlib.metadata`` instead
would import that module on every start: about 35 ms, a third of ``chatcontract --version``'s
100 ms budget.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
