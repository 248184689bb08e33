-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    indexes=[
        {'columns': ['load_id', 'source_file', 'source_sheet']},
        {'columns': ['app_client_id', 'delivery_date']},
    ],
    pre_hook=["{{ delete_stale_sources(raw_sources([source('legacy_app', 'deliveries')])) }}"],
    post_hook=["{{ comment_model_state() }}", "{{ analyze_if_new() }}"]
) }}
{#- One row per app delivery: typed through the macros, with what could not be typed
    flagged; the driver's name and the vehicle's plate are stg_legacy_app__drivers' and
    stg_legacy_app__vehicles'. Incremental by source, like stg_delivery_history__deliveries:
    the app's table is staged again only when it was reloaded (a new load id), and the
    pre-hook deletes the rows of the load it replaces; and again when the table was changed
    in place (macro raw_edited_since). -#}
{%- set sizes = app_size_columns() -%}
{#- the text cells typed reads more than once: cleaned once, in source -#}
{%- set reread = ['id', 'client_id', 'driver_id', 'vehicle_id'] -%}
{%- for size, column in sizes.items() -%}
    {%- do reread.extend([column, 'returned_' ~ size ~ 'kg']) -%}
{%- endfor -%}
{%- set earliest, latest = var('delivery_date_min'), var('delivery_date_max') -%}

{%- set current = raw_table_source(source('legacy_app', 'deliveries')) %}
{%- set staged_already = is_incremental() and current is not none
    and source_in(current, staged_sources(this)) and not raw_edited_since(model_state(this)) %}

with

raw_rows as not materialized (

    {%- if staged_already %}
    -- this load of the app's table is staged already
        select * from ({{ source_or_empty('legacy_app', 'deliveries') }}) as loaded
        where false
    {%- else %}
        {{ source_or_empty('legacy_app', 'deliveries') }}
    {%- endif %}

),

-- Each date text parsed once: the app repeats a few thousand dates over its 180k rows, and
-- the parse (a scalar subquery of seven materialized CTEs) costs far more than the join.
-- NULL is no key of the join: a row without a date is parsed in typed (it is empty).
date_outcomes as (

    select
        date_text,
        {{ taiwan_date_outcome('date_text', earliest, latest) }} as delivery_date_outcome
    from (
        select distinct scheduled_date as date_text
        from raw_rows
        where scheduled_date is not null
    ) as date_texts

),

-- The loaded rows, with each text cell that typed reads more than once cleaned once here
-- (macro clean_text, before this the most of this model's time): PostgreSQL computes an
-- expression again at every use, and would fold this query into typed and clean each cell
-- there as often as typed names it, but for OFFSET 0. Typed reads them with cleaned=true.
source as not materialized (

    select
        {%- for column in reread %}
            {{ clean_text('raw_rows.' ~ column) }} as {{ column }}_cleaned,
        {%- endfor %}
        raw_rows.*
    from raw_rows
    offset 0  -- noqa: AM09

),

typed as materialized (

    select
        -- lineage
        source._source_file as source_file,
        source._source_sheet as source_sheet,
        source._source_row as source_row,
        source._load_id as load_id,

        -- keys
        {{ to_numeric('source.id_cleaned', cleaned=true) }}::bigint as app_delivery_id,
        {{ to_numeric('source.client_id_cleaned', cleaned=true) }}::bigint as app_client_id,
        source.client_id as app_client_id_raw,

        -- when: scheduled_date (ISO), the time it was delivered (or the slot's start)
        coalesce(
            date_outcomes.delivery_date_outcome,
            {{ taiwan_date_outcome('source.scheduled_date', earliest, latest) }}
        ) as delivery_date_outcome,
        source.scheduled_date as delivery_date_raw,
        -- (the length first: the app writes most times as a bare date, 10 characters, which
        -- the pattern, 16 characters at least, cannot match, and a regular expression costs
        -- far more than a length)
        coalesce(
            case
                when
                    length(source.actual_delivery_time) >= 16
                    and source.actual_delivery_time
                    ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T]([01][0-9]|2[0-3]):[0-5][0-9]'
                    then cast(substr(source.actual_delivery_time, 12, 5) as time)
            end,
            case
                when source.scheduled_time_start ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
                    then cast(source.scheduled_time_start as time)
            end
        ) as delivery_time,

        -- who and how
        lower({{ clean_text('source.status') }}) as status,
        {{ to_numeric('source.driver_id_cleaned', cleaned=true) }}::bigint as driver_id,
        {{ to_numeric('source.vehicle_id_cleaned', cleaned=true) }}::bigint as vehicle_id,

        -- cylinders delivered by size
        {%- for column in sizes.values() %}
            {{ to_numeric('source.' ~ column ~ '_cleaned', cleaned=true) }} as {{ column }},
        {%- endfor %}

        -- quantity cells that hold something (a number or not)
        {%- for column in sizes.values() %}
            (source.{{ column }}_cleaned is not null)::int
            {%- if not loop.last %} +{% endif %}
        {%- endfor %} as filled_quantity_cells,

        -- empty cylinders taken back on the visit, as the app wrote them (50kg=1, 20kg=2)
        nullif(concat_ws(
            ', ',
            {%- for size in sizes %}
                case
                    when source.returned_{{ size }}kg_cleaned is distinct from '0'
                        then '{{ size }}kg=' || source.returned_{{ size }}kg_cleaned
                end{{ ',' if not loop.last }}
            {%- endfor %}
        ), '') as returned_cylinders,
        {{ clean_text('source.notes') }} as notes

    from source
    left join date_outcomes on source.scheduled_date = date_outcomes.date_text

),

cleaned as (

    select
        source_file,
        source_sheet,
        source_row,
        load_id,
        app_delivery_id,
        app_client_id,
        app_client_id_raw,
        {{ taiwan_date_of_outcome('delivery_date_outcome') }} as delivery_date,
        {{ taiwan_date_reason_of_outcome('delivery_date_outcome') }} as delivery_date_reason,
        delivery_date_raw,
        delivery_time,
        status,
        driver_id,
        vehicle_id,
        {%- for column in sizes.values() %}
            {{ column }},
        {%- endfor %}

        -- what the quantities hold, for the quarantine rules
        filled_quantity_cells > (
            {%- for column in sizes.values() %}
                ({{ column }} is not null)::int
                {%- if not loop.last %} +{% endif %}
            {%- endfor %}
        ) as has_invalid_quantity,
        coalesce(
            {%- for column in sizes.values() %}
                {{ column }} < 0
                {%- if not loop.last %} or{% endif %}
            {%- endfor %},
            false
        ) as has_negative_quantity,
        coalesce(
            {%- for column in sizes.values() %}
                {{ column }} > 0
                {%- if not loop.last %} or{% endif %}
            {%- endfor %},
            false
        ) as has_positive_quantity,
        returned_cylinders,
        notes

    from typed

)

select * from cleaned
