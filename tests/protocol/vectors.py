"""Known answers from outside the project, as literals (docs/protocol.md §6; sources:
keshavdv/victron-ble tests, esphome-victron_ble#135)."""

# Full adverts with their keys (real captures).
SMARTSHUNT_ADVERT = bytes.fromhex("100289a302b040af925d09a4d89aa0128bdef48c6298a9")
SMARTSHUNT_KEY = "aff4d0995b7d1e176c0c33ecb9e70dcd"
SMARTSHUNT_MISMATCH_ADVERT = bytes.fromhex("100289a302bb01af129087600b9b97bc2c32867c8238da")
ORION_ADVERT = bytes.fromhex("1000c0a304121d64ca8d442b90bbdf6a8cba")
ORION_KEY = "64ba49f1a8562e45197a8e1fe50d7658"
MPPT_ADVERT = bytes.fromhex("100242a0016207adceb37b605d7e0ee21b24df5c")
MPPT_KEY = "adeccb947395801a4dd45a2eaa44bf17"

# Decrypted payloads published by peers (the tails past the record length are keystream garbage
# from their pad-then-decrypt step and must be ignored).
SMART_LITHIUM_1 = bytes.fromhex("000000060000c7e3f1f8ffffff2c35b5fab478010fd249d2ae5f6956e1f8a965")
SMART_LITHIUM_2 = bytes.fromhex("000000060000c7e3f1f8ffffff2c15b6849aea20977d8ca2b6f932de828a88f9")
SMART_LITHIUM_3 = bytes.fromhex("000000060000c7e3d1f8ffffff2b35b55be593fd3933e41c3f43ce6641e771a3")
LYNX_1 = bytes.fromhex("0040388b0afaff951555148ccf0200ffb3eaf174d6fc7a4854b8ec008609e9ca")
SMART_BMS_12_200 = bytes.fromhex("000000e804e704bf040018251100")
