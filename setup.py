"""Packaging for pydownloads."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "pydownloads" / "_version.py").read_text()).group(1)

setup(
    name="pydownloads",
    version=VERSION,
    description="Download many files over HTTP(S) at once: priority queue, thread pool, retries, progress.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["pydownloads", "pydownloads.*"]),
    package_data={"pydownloads": ["py.typed"]},
    python_requires=">=3.10",
    # Each floor is the oldest release the whole test suite passes with: requirements-min.txt
    # pins them all and CI runs the suite against it (tox -e min).  requirements.txt repeats
    # install_requires; tests/unit/test_dependency_floors.py keeps the three files agreeing.
    install_requires=[
        "requests>=2.31,<3",
        "urllib3>=2.2,<3",  # 2.0 and 2.1 lack HTTPResponse.read1, which every download uses
        "blinker>=1.6,<2",
        "tqdm>=4.64,<5",
    ],
    extras_require={"dask": ["distributed>=2024.1"]},
    entry_points={"console_scripts": ["pydownloads=pydownloads.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP",
        "Typing :: Typed",
    ],
)
