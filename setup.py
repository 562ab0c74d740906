"""Build hook for the optional C extension; everything else is in pyproject.toml.

``azwatch._speedups`` speeds up ``azwatch.logparse.parse_block``. It is optional: without a C
compiler the build goes on and azwatch uses its pure-Python scan, which gives the same events.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "azwatch._speedups",
            ["azwatch/_speedups.c"],
            optional=True,
            extra_compile_args=["-Wall", "-Wextra", "-Werror=incompatible-pointer-types"],
        )
    ]
)
