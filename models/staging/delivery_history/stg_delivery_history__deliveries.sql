-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
-- depends_on: {{ source('delivery_history', 'sheet1') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    indexes=[
        {'columns': ['load_id', 'source_file', 'source_sheet']},
        {'columns': ['client_code', 'delivery_date']},
    ],
    pre_hook=["{{ delete_stale_sources(raw_sources(
        delivery_history_relations() | map(attribute='relation') | list)) }}"],
    post_hook=["{{ comment_model_state() }}", "{{ analyze_if_new() }}"]
) }}
{#- One row per row of every delivery-history table loaded, in either history layout of the
    catalogue (seed raw_layouts): history_daily, the real export (one row per client and
    delivery day: 客戶, 電子發票抬頭, 客戶簡稱, 地址, 最後十次日期, no quantities), and
    history_transaction (a daily upload file: 編號 or 客戶, 業務員, 交易日期, 交易時間 and the 16
    product quantities). Typed through the macros, with what could not be typed flagged,
    never dropped; a column a layout does not have is NULL, and items_recorded says whether
    the layout records quantities at all. Product quantities keep their headers; the
    intermediate layer conforms them to product codes. Incremental, by source (a raw table:
    a file's sheet): a build stages only the raw tables whose rows it does not hold yet (a
    new file, a sheet reloaded with a new load id) and its pre-hook deletes the rows of the
    sources no longer current (the old rows of a reloaded sheet, a table no longer loaded or
    no longer of a history layout); macros/incremental/delete_stale_sources.sql. A raw
    table changed in place since the last build (same load id, other rows: macro
    raw_edited_since) makes it stage every table again. Its 350k date parses take seconds:
    a daily build parses only the day's file. -#}
{%- set products = history_product_columns() -%}
{%- set earliest, latest = var('delivery_date_min'), var('delivery_date_max') -%}
{%- set tables = delivery_history_relations() %}
{%- set staged = staged_sources(this)
    if is_incremental() and not raw_edited_since(model_state(this)) else [] %}
{%- set to_stage = [] %}
{%- for table in tables %}
    {%- set current = raw_table_source(table.relation) %}
    {%- if current is not none and not source_in(current, staged) %}
        {%- do to_stage.append(table) %}
    {%- endif %}
{%- endfor %}
{%- if not tables -%}
    {#- the line of macro source_or_empty: no table of either history layout is loaded -#}
    {{ log_built_empty('raw table raw.<history_daily|history_transaction>'
        ~ ' (source delivery_history, found by layout)') }}
{%- endif %}

with

unioned as not materialized (

    {% for table in to_stage -%}
    {%- set cols = table.columns -%}
    {%- set daily = table.layout == 'history_daily' -%}
    select
        _load_id,
        _source_file,
        _source_sheet,
        _source_row,
        '{{ table.layout }}' as layout,
        {{ 'false' if daily else 'true' }} as items_recorded,
        {{ history_column(cols, '客戶' if '客戶' in cols else '編號') }} as client_code_raw,
        {{ history_column(cols, '電子發票抬頭') }} as invoice_title_raw,
        {{ history_column(cols, '客戶簡稱') }} as short_name_raw,
        {{ history_column(cols, '地址') }} as address_raw,
        {{ history_column(cols, '業務員') }} as salesperson_raw,
        {{ history_column(cols, '最後十次日期' if daily else '交易日期') }} as delivery_date_raw,
        {{ history_column(cols, '交易時間') }} as delivery_time_raw,
        {%- for p in products %}
        {{ history_column(cols, p) }} as "{{ p }}",
        {%- endfor %}
        {{ 'cast(null as text)' if daily else history_column(cols, '最後十次日期') }}
            as last_dates_raw
    from {{ table.relation }}
    {% if not loop.last %}union all{% endif %}
    {% else -%}
    -- no history table to stage (none loaded yet, or every one staged already): an empty
    -- relation of the same shape
        select
            cast(null as bigint) as _load_id,
            cast(null as text) as _source_file,
            cast(null as text) as _source_sheet,
            cast(null as integer) as _source_row,
            cast(null as text) as layout,
            cast(null as boolean) as items_recorded,
            cast(null as text) as client_code_raw,
            cast(null as text) as invoice_title_raw,
            cast(null as text) as short_name_raw,
            cast(null as text) as address_raw,
            cast(null as text) as salesperson_raw,
            cast(null as text) as delivery_date_raw,
            cast(null as text) as delivery_time_raw,
            {%- for p in products %}
                cast(null as text) as "{{ p }}",
            {%- endfor %}
            cast(null as text) as last_dates_raw
        where false
    {%- endfor %}

),

-- Each date text parsed once: a sheet repeats a few thousand dates over its 350k rows, and
-- the parse (a scalar subquery of seven materialized CTEs) costs far more than the join.
-- NULL is no key of the join: a row without a date text is parsed in typed (it is empty).
date_outcomes as (

    select
        date_text,
        {{ taiwan_date_outcome('date_text', earliest, latest) }} as delivery_date_outcome
    from (
        select distinct delivery_date_raw as date_text
        from unioned
        where delivery_date_raw is not null
    ) as date_texts

),

dated as (

    select
        unioned.*,
        date_outcomes.delivery_date_outcome as parsed_date_outcome
    from unioned
    left join date_outcomes on unioned.delivery_date_raw = date_outcomes.date_text

),

typed as materialized (

    select
        -- lineage
        _source_file as source_file,
        _source_sheet as source_sheet,
        _source_row as source_row,
        _load_id as load_id,
        layout,
        items_recorded,

        -- client: 客戶 (or 編號), with the invoice title, name and address the row repeats
        {{ client_code('client_code_raw') }} as client_code,
        client_code_raw,
        {{ clean_text('invoice_title_raw') }} as invoice_title,
        {{ clean_text('short_name_raw') }} as short_name,
        {{ clean_address('address_raw') }} as address,
        address_raw,

        -- when and by whom: 最後十次日期 (history_daily) or 交易日期 (ROC or Gregorian, any
        -- of the forms seen), 交易時間, 業務員
        coalesce(
            parsed_date_outcome,
            {{ taiwan_date_outcome('delivery_date_raw', earliest, latest) }}
        ) as delivery_date_outcome,
        delivery_date_raw,
        case
            when
                {{ clean_text('delivery_time_raw') }}
                ~ '^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$'
                then cast({{ clean_text('delivery_time_raw') }} as time)
        end as delivery_time,
        delivery_time_raw,
        {{ clean_text('salesperson_raw') }} as salesperson,

        -- quantities by product column: cylinders, or kg for 流量 (metered) columns
        {%- for p in products %}
            {{ to_numeric('"' ~ p ~ '"') }} as "{{ p }}",
        {%- endfor %}

        -- product cells that hold something (a number or not)
        {%- for p in products %}
            ({{ clean_text('"' ~ p ~ '"') }} is not null)::int
            {%- if not loop.last %} +{% endif %}
        {%- endfor %} as filled_quantity_cells,

        -- 最後十次日期 of the transaction layout: the client's previous delivery as the
        -- sheet saw it (not a fact of this delivery; kept for lineage)
        last_dates_raw

    from dated

),

cleaned as (

    select
        source_file,
        source_sheet,
        source_row,
        load_id,
        layout,
        items_recorded,
        client_code,
        client_code_raw,
        invoice_title,
        short_name,
        address,
        address_raw,
        {{ taiwan_date_of_outcome('delivery_date_outcome') }} as delivery_date,
        {{ taiwan_date_reason_of_outcome('delivery_date_outcome') }} as delivery_date_reason,
        delivery_date_raw,
        delivery_time,
        delivery_time_raw,
        salesperson,
        {%- for p in products %}
            "{{ p }}",
        {%- endfor %}

        -- what the quantities hold, for the quarantine rules
        filled_quantity_cells > (
            {%- for p in products %}
                ("{{ p }}" is not null)::int
                {%- if not loop.last %} +{% endif %}
            {%- endfor %}
        ) as has_invalid_quantity,
        coalesce(
            {%- for p in products %}
                "{{ p }}" < 0
                {%- if not loop.last %} or{% endif %}
            {%- endfor %},
            false
        ) as has_negative_quantity,
        coalesce(
            {%- for p in products %}
                "{{ p }}" > 0
                {%- if not loop.last %} or{% endif %}
            {%- endfor %},
            false
        ) as has_positive_quantity,
        last_dates_raw

    from typed

)

select * from cleaned
