"""The one thing pyproject.toml can't say: the optional compiled helpers (issue 12).

`optional=True`: where it does not build (no compiler, no Python headers), the install goes on
and `victron_ble_bms.protocol.accel` finds no helper: objects are filled in Python and AES is
done by `cryptography`, with the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "victron_ble_bms.protocol._accel",
            ["victron_ble_bms/protocol/_accel.c"],
            depends=[
                "victron_ble_bms/protocol/_spec.h",
                "victron_ble_bms/protocol/_payload.h",
                "victron_ble_bms/protocol/_aes_arm.h",
            ],
            optional=True,
        ),
        # The device table's hot path (sources/devices.py); uses the helper's slot specs.
        Extension(
            "victron_ble_bms.sources._accept",
            ["victron_ble_bms/sources/_accept.c"],
            depends=["victron_ble_bms/protocol/_spec.h", "victron_ble_bms/protocol/_payload.h"],
            optional=True,
        ),
    ]
)
