"""The automation surface: API keys, lbadmin's REST API (/api/v1/) and the commercial
appliance's compatible API v2 (/api/v2/) and lbcli."""
