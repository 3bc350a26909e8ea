"""Microsoft's MSAL for Python (Debian's python3-msal) as a real client of Gatehouse.

Usage: python3 device_code.py AUTHORITY CA_FILE CLIENT_ID SCOPE

The device code flow (the message goes to standard output at once, the test enters the code in a browser), then what
an application does on its next run: get_accounts() must find the account, and acquire_token_silent() must renew the
access token from the refresh token without interaction (force_refresh, so the refresh really happens). Each access
token is tried on the admin API. The last line is "RESULT <json>" with what the test checks; no token is printed.
"""
import hashlib
import json
import sys

import msal
import requests


def digest(token):
    return hashlib.sha256(token.encode("ascii")).hexdigest() if token else None


def admin_status(base, token, ca_file):
    response = requests.get(base + "/admin/v1/users", headers={"Authorization": "Bearer " + token}, verify=ca_file, timeout=60)
    return response.status_code


def summary(result, base, ca_file):
    if not result:
        return {"result": None}
    if "access_token" not in result:
        return {"error": result.get("error"), "error_description": result.get("error_description")}
    claims = result.get("id_token_claims") or {}
    return {
        "access_token_sha256": digest(result["access_token"]),
        "has_refresh_token": "refresh_token" in result,
        "id_token_claims": {k: claims.get(k) for k in ("iss", "aud", "sub", "oid", "tid", "preferred_username", "name")},
        "admin_api_status": admin_status(base, result["access_token"], ca_file),
    }


def main():
    authority, ca_file, client_id, scope = sys.argv[1:5]
    base = authority.rsplit("/", 1)[0]
    scopes = scope.split()
    # Trust the gateway's own certificate (verify=); no instance discovery at Microsoft's cloud: the authority is
    # the developer's (validate_authority=False), and no alias look-up either (instance_discovery=False).
    app = msal.PublicClientApplication(
        client_id, authority=authority, verify=ca_file, validate_authority=False, instance_discovery=False)

    flow = app.initiate_device_flow(scopes=scopes)
    if "user_code" not in flow:
        print("RESULT " + json.dumps({"stage": "initiate_device_flow", "error": flow.get("error"), "error_description": flow.get("error_description")}), flush=True)
        return 1
    print(flow["message"], flush=True)

    device = app.acquire_token_by_device_flow(flow)
    accounts = app.get_accounts()
    silent = app.acquire_token_silent(scopes, account=accounts[0], force_refresh=True) if accounts else None
    report = {
        "device_code": summary(device, base, ca_file),
        "accounts": [{k: a.get(k) for k in ("home_account_id", "environment", "username", "local_account_id", "realm")} for a in accounts],
        "silent": summary(silent, base, ca_file),
    }
    print("RESULT " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
