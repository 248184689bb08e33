-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
{#-
    The client-days the incremental delivery marts rebuild on this run, decided once, before
    any of them changes (macros/incremental/delivery_mart_config.sql):
    - every day with a source row from a load newer than the newest the marts have seen
      (deliveries' max(last_load_id)): new rows, re-sent rows, app twins;
    - every day that holds a delivery built from a source reloaded since: the rows of a
      reloaded sheet or table may now be quarantined or moved to another client or day, and
      their old days must be rebuilt even when no current row falls on them;
    - every day that holds a delivery built from a source the classification no longer
      holds (a source no longer loaded);
    - every day, when a delivery raw table was changed in place since the marts were built
      (macro raw_edited_since, against the state deliveries recorded).
    The lookups are index scans (the classification's index on load_id, the bridge's on
    source_file, source_sheet), so a daily build reads only the day's rows.
    Without built marts (a first build) every day is listed; full builds do not read it.
    It reads the marts it feeds as the previous build left them (macro previous_build,
    declared in its yml: meta previous_build).
-#}
{%- set deliveries = previous_build('deliveries') -%}
{%- set bridge = previous_build('delivery_sources') -%}
{#- a delivery raw table changed in place since the marts were built: every day -#}
{%- set whole = deliveries is not none and raw_edited_since(model_state(deliveries)) -%}
{#- the sources the bridge names that the classification no longer holds (a source no
    longer loaded): their days lose their deliveries -#}
{%- set gone = [] -%}
{%- if bridge is not none -%}
    {%- set classified = staged_sources(ref('int_delivery_rows_classified'), none) -%}
    {%- for source in staged_sources(bridge, none) if not source_in(source, classified) -%}
        {%- do gone.append(source) -%}
    {%- endfor -%}
{%- endif %}
with

classified as (

    select
        client_code,
        delivery_date,
        source_file,
        source_sheet,
        load_id
    from {{ ref('int_delivery_rows_classified') }}

),

watermark as (

    {{ delivery_marts_watermark(deliveries) }}

),

newer as (

    select
        classified.client_code,
        classified.delivery_date,
        classified.source_file,
        classified.source_sheet
    from classified
    {%- if not whole %}
        where classified.load_id > (select watermark.load_id from watermark)
    {%- endif %}

),

gone as (

    {{ sources_values(gone) }}

),

reloaded as (

    select distinct
        source_file,
        source_sheet
    from newer
    union
    select
        source_file,
        source_sheet
    from gone

),

days as (

    select
        client_code,
        delivery_date
    from newer
    union
    {{ delivery_days_from_sources(bridge, 'reloaded') }}

),

final as (

    select distinct
        client_code,
        delivery_date
    from days
    where client_code is not null and delivery_date is not null

)

select * from final
