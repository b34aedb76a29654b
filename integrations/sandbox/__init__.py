"""The provider sandbox: a local, stateful emulator of provider APIs over real HTTP.

The project's HTTP clients, end-to-end tests, demo and benchmarks run against it instead of the
real ServiceM8 and ServiceTitan. It is written **only** from the providers' documentation and
official specs (``shared/provider-specs``, NOTES.md §1–2) and imports nothing from
``integrations.providers``, ``portal``, ``quotes``, ``sync`` or Django (STYLE.md §1): a
misunderstanding in a client must not be cancelled out by the same one here. Plain Python,
werkzeug and stdlib ``sqlite3``.

Running it::

    manage.py sandbox_seed --records 1000 --db var/sandbox.sqlite3 --reset
    manage.py sandbox_serve --port 8765 --db var/sandbox.sqlite3

    with SandboxServer(tmp_path / "sb.sqlite3") as sandbox:   # tests: port 0, any free port
        sandbox.url  # "http://127.0.0.1:54321"

``--records`` is clients per provider; ``seed.py`` derives their contacts, jobs (quotes
included), line items, visits/appointments, locations and estimates from it through per-client
ratios (``--jobs-per-client`` …, ``--clients-only``) and adds fixed catalogues (staff, pricebook,
categories, tax rates, business units, job types), deterministic for a given ``--seed``.

URL layout (one root; a contract other code relies on)
    ServiceM8 (real: https://api.servicem8.com/api_1.0)
        ``GET {root}/servicem8/api_1.0/{object}.json``        ``company``, ``companycontact``,
              ``staff``, ``job`` (quotes: ``status`` ``Quote``), ``jobmaterial``,
              ``jobactivity``, ``material``, ``category``, ``taxrate``, ``vendor``
        ``GET {root}/servicem8/api_1.0/{object}/{uuid}.json``
        ``GET {root}/servicem8/oauth/authorize``             auto-approves, 302 with code+state
        ``POST {root}/servicem8/oauth/access_token``         authorization_code, refresh_token
    ServiceTitan (real: https://api.servicetitan.io, https://auth.servicetitan.io)
        ``GET {root}/servicetitan/{module}/v2/tenant/{tenant}/{resource}`` and ``…/{id}``:
              ``crm/customers``, ``crm/locations``, ``jpm/jobs``, ``jpm/appointments``,
              ``jpm/job-types``, ``sales/estimates``, ``settings/technicians``,
              ``settings/employees``, ``settings/business-units``, ``pricebook/categories``,
              ``pricebook/services``, ``pricebook/materials``, ``pricebook/equipment``
        ``POST {root}/servicetitan-auth/connect/token``       client_credentials
    Control (JSON, no auth; see ``control.py`` for the full table)
        ``{root}/_sandbox/stats``, ``…/stats/reset``, ``…/config``, ``…/reset``, ``…/faults``,
        ``…/records/{provider}/{object}[/{id}]``, ``…/seed``, ``…/accounts``

Accounts (``accounts.py``)
    ServiceM8 account ``5a4b1c2d-0000-4000-8000-000000005e8a`` (Australia/Sydney), API key
    ``sm8-sandbox-api-key``; OAuth app ``sm8-sandbox-client`` / ``sm8-sandbox-secret``.
    ServiceTitan tenant ``1000001``, app key ``ak1.sandbox-app-key``, client
    ``cid.sandbox-client`` / ``cs1.sandbox-secret``. A secondary account/tenant of each exists
    (empty) for isolation tests.

Behaviour worth knowing
    - ServiceM8 ``edit_date`` is ``YYYY-MM-DD HH:MM:SS`` in the **account's time zone**
      (Australia/Sydney), and ``$filter`` values on it are read in that zone; the store keeps
      UTC internally (NOTES.md §1 calls the zone "account local time [mem]"; the spec states
      none). ServiceTitan times are UTC.
    - ServiceM8 paging: ``cursor=-1`` then ``x-next-cursor`` (absent on the last page), at most
      ``page_size`` (default and max 5,000) records per page, ordered by (edit time, uuid);
      without ``cursor`` the whole collection is streamed. Unknown cursor → 400.
    - ServiceTitan paging: ``page``/``pageSize`` (1–5,000, default 50) → ``hasMore``; default
      order by id; ``active`` defaults to ``True`` (soft-deleted records hidden) on the lists
      that declare it. Each resource takes the list parameters its spec declares: the date
      filters (``modifiedOnOrAfter``, ``createdBefore``, ``completedOnOrAfter`` …) and id/status
      equality filters (``customerId``, ``jobId``, ``jobStatus``, ``status`` …) are emulated,
      the others answer 400; undeclared ones are ignored. Fields a schema lacks are not sent
      (jobs, appointments, job types have no ``active``; pricebook categories no
      ``modifiedOn``).
    - Seeded data follows the spec schemas (field names and types); money is a 2-decimal string
      in ServiceM8 and a decimal number in ServiceTitan. ServiceM8 ``format: uuid`` references
      without a value, and ServiceTitan nullable ``oneOf`` fields that are null, are omitted
      (an empty string / null would not validate against the spec). ServiceTitan estimates
      have no ``customerId``/``locationId`` in the 2022 schema: they reach both via ``jobId``.
    - Rate limits: ServiceM8 180/minute as a *sliding* 60 s window and 20,000/day as a *fixed*
      account-local calendar day, per (account, add-on = API key or OAuth client);
      ServiceTitan 60/second as a sliding 1 s window per (app key, tenant), 429 with
      ``Retry-After``. Token and control endpoints are not counted; rejected requests do not
      consume budget. All limits are tunable and can be switched off via ``/_sandbox/config``.
    - Soft deletes: ``active`` 0/false with a bumped modified time; still readable.
    - Faults (``/_sandbox/faults``): a deterministic queue plus seeded random errors,
      latency, timeouts, malformed bodies, truncated pages and edits during a sync.

Not emulated (yet): writes; ServiceTitan's bulk contacts list ``crm/…/customers/contacts``
(contacts are seeded and reachable through the control API, but the URL would need a special
case next to ``customers/{id}``); other objects — add an ``ObjectSpec`` (ServiceM8) or a
``ResourceSpec`` (``servicetitan_resources.py``) and seed data; the record store is generic
(provider, account, object, id). ServiceM8 ignoring an *unencoded* ``$filter`` (NOTES.md §1) is
not reproducible over HTTP clients that always encode, so it is not emulated. ServiceTitan's
name/address/phone list filters (and the other declared filters listed in each
``ResourceSpec.unemulated_filters``) are refused with 400 rather than silently ignored.
"""
