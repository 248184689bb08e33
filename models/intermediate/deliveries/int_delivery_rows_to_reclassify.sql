-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
-- depends_on: {{ ref('stg_delivery_history__deliveries') }}
-- depends_on: {{ ref('stg_legacy_app__deliveries') }}
-- depends_on: {{ ref('int_app_clients_matched') }}
-- depends_on: {{ ref('int_customer_codes_unioned') }}
{#-
    What an incremental build of int_delivery_rows_classified classifies again, decided
    before it changes (macro delivery_classification_plan: the sources new to it, and its
    old ones that staging no longer holds). Every rule of the classification looks only at
    the rows of one client and day (and at the client's customer status), so it redoes:
    - kind day: every client-day with a row of a new source (a new file, a reloaded sheet)
      or of an old one (the previous rows of a reloaded sheet, whose client or day may have
      changed, and of a source no longer loaded), and every client-day holding a row whose
      client became, or stopped being, a customer (a code a new history file names for the
      first time turns an app row's unknown_client into a delivery; only the codes of the
      new and old rows can change status, the other client sources being unchanged, else
      the plan redoes everything);
    - kind row: such a row that has no client code or no day (it is quarantined either way,
      on its own).
    Empty on a first build and when the plan redoes every row. It reads the classification
    as the previous build left it (macro previous_build, meta previous_build in its yml).
-#}
{%- set classified = previous_build('int_delivery_rows_classified') -%}
{%- set plan = delivery_classification_plan(classified) -%}
{%- if classified is none or plan.all %}

    select
        null::text as kind,
        null::text as client_code,
        null::date as delivery_date,
        null::text as source_file,
        null::text as source_sheet,
        null::integer as source_row
    where false

{%- else %}

    with

    new_sources as (

        {{ sources_values(plan.new) }}

    ),

    old_sources as (

        {{ sources_values(plan.old) }}

    ),

    old_rows as (

        select
            classified.client_code,
            classified.delivery_date
        from {{ classified }} as classified
        where (classified.source_file, classified.source_sheet, classified.load_id) in (
            select
                old_sources.source_file,
                old_sources.source_sheet,
                old_sources.load_id
            from old_sources
        )

    ),

    new_rows as (

        select
            history.client_code,
            history.delivery_date
        from {{ ref('stg_delivery_history__deliveries') }} as history
        where (history.source_file, history.source_sheet, history.load_id) in (
            select
                new_sources.source_file,
                new_sources.source_sheet,
                new_sources.load_id
            from new_sources
        )

        union all

        select
            app_clients.client_code,
            app.delivery_date
        from {{ ref('stg_legacy_app__deliveries') }} as app
        left join {{ ref('int_app_clients_matched') }} as app_clients
            on app.app_client_id = app_clients.app_client_id
        where (app.source_file, app.source_sheet, app.load_id) in (
            select
                new_sources.source_file,
                new_sources.source_sheet,
                new_sources.load_id
            from new_sources
        )

    ),

    changed_codes as (

        select client_code from old_rows
        where client_code is not null
        union
        select client_code from new_rows
        where client_code is not null

    ),

    -- rows whose client's customer status is not the one they were classified with
    flipped as (

        select
            classified.client_code,
            classified.delivery_date,
            classified.source_file,
            classified.source_sheet,
            classified.source_row
        from {{ classified }} as classified
        inner join changed_codes
            on classified.client_code = changed_codes.client_code
        left join {{ ref('int_customer_codes_unioned') }} as customers
            on classified.client_code = customers.client_code
        where
            classified.quarantine_reason is distinct from 'test_client'
            and coalesce(classified.quarantine_reason = 'unknown_client', false)
            = (customers.client_code is not null)

    ),

    days as (

        select
            client_code,
            delivery_date
        from old_rows
        union
        select
            client_code,
            delivery_date
        from new_rows
        union
        select
            client_code,
            delivery_date
        from flipped

    ),

    final as (

        select
            'day' as kind,
            client_code,
            delivery_date,
            null::text as source_file,
            null::text as source_sheet,
            null::integer as source_row
        from days
        where client_code is not null and delivery_date is not null

        union all

        select
            'row' as kind,
            null::text as client_code,
            null::date as delivery_date,
            source_file,
            source_sheet,
            source_row
        from flipped
        where client_code is null or delivery_date is null

    )

    select * from final

{%- endif %}
