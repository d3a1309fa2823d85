"""The one thing pyproject.toml can't say: the optional compiled AES helper (issue 12).

`optional=True`: where it does not build (no compiler, another CPU family), the install goes
on and `victron_ble_bms.protocol.crypto` uses `cryptography` instead, with the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "victron_ble_bms.protocol._accel",
            ["victron_ble_bms/protocol/_accel.c"],
            optional=True,
        )
    ]
)
