"""Package layout that pyproject.toml alone cannot express: the repository's ``weights/`` folder ships inside the
package as ``imgforge/_weights`` (package data), so wheel, sdist, ``--user`` and ``--target`` installs carry the
shipped models next to the code. ``imgforge.hub.manifest.repo_weights_dir`` finds them there, or at ``weights/``
beside the package in a source checkout / editable install. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

SHIPPED = ["*.safetensors", "SHA256SUMS", "README.md"]

setup(
    packages=find_packages(include=["imgforge", "imgforge.*"]) + ["imgforge._weights"],
    package_dir={"imgforge._weights": "weights"},
    package_data={"imgforge": ["py.typed"], "imgforge._weights": SHIPPED},
)
