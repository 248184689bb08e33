-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
{#- Every non-zero quantity of every delivery source row, as (row, product code, quantity):
    the history's product columns and the app's cylinder sizes conformed to the codes of
    seeds/products.csv. Quantities are cylinders, or kg for metered (流量) products. Rows
    of every outcome are here (quarantined and merged rows too): the reconciliation of
    totals reads them. Incremental by source, like staging: a build conforms only the rows
    of the sources (file, sheet, load id) staging holds and it has not processed (kept as
    its state, post-hook comment_model_state; a source without quantities leaves no row
    here), and its pre-hook deletes the rows of the sources staging no longer holds (every
    row, when a delivery raw table was changed in place: macro raw_edited_since). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    indexes=[{'columns': ['source_file', 'source_sheet', 'source_row']}],
    pre_hook=["{{ delete_stale_sources(staged_sources(ref('stg_delivery_history__deliveries'))
        + staged_sources(ref('stg_legacy_app__deliveries'))) }}"],
    post_hook=["{{ comment_model_state({'sources': sources_recorded(
        staged_sources(ref('stg_delivery_history__deliveries'))
        + staged_sources(ref('stg_legacy_app__deliveries')))}) }}", "{{ analyze_if_new() }}"]
) }}
{%- set whole = not is_incremental() or raw_edited_since(model_state(this)) %}
{%- set done = [] if whole else model_sources(this) %}
{%- set new = [] %}
{%- for source in staged_sources(ref('stg_delivery_history__deliveries'))
    + staged_sources(ref('stg_legacy_app__deliveries'))
    if not source_in(source, done) %}
    {%- do new.append(source) %}
{%- endfor %}
with

new_sources as (

    {{ sources_values(new) }}

),

history as (

    select * from {{ ref('stg_delivery_history__deliveries') }}
    {%- if not whole %}
        where (source_file, source_sheet, load_id) in (
            select
                new_sources.source_file,
                new_sources.source_sheet,
                new_sources.load_id
            from new_sources
        )
    {%- endif %}

),

app as (

    select * from {{ ref('stg_legacy_app__deliveries') }}
    {%- if not whole %}
        where (source_file, source_sheet, load_id) in (
            select
                new_sources.source_file,
                new_sources.source_sheet,
                new_sources.load_id
            from new_sources
        )
    {%- endif %}

),

products as (

    select * from {{ ref('products') }}

),

history_cells as (

    select
        history.source_file,
        history.source_sheet,
        history.source_row,
        history.load_id,
        cells.source_column,
        cells.quantity
    from history
    cross join {{ quantity_cells('history', history_product_columns()) }}
    -- the 5-column history records no quantity: only its transaction layout has cells
    where history.items_recorded and cells.quantity <> 0

),

app_cells as (

    select
        app.source_file,
        app.source_sheet,
        app.source_row,
        app.load_id,
        cells.source_column,
        cells.quantity
    from app
    cross join {{ quantity_cells('app', app_size_columns().values()) }}
    where cells.quantity <> 0

),

conformed as (

    select
        'history' as source_system,
        history_cells.source_file,
        history_cells.source_sheet,
        history_cells.source_row,
        products.product_code,
        products.kind as product_kind,
        products.size_kg,
        history_cells.source_column,
        history_cells.quantity,
        history_cells.load_id
    from history_cells
    inner join products on history_cells.source_column = products.history_column

    union all

    -- the app records cylinders by size only: each size is its regular product
    select
        'app' as source_system,
        app_cells.source_file,
        app_cells.source_sheet,
        app_cells.source_row,
        products.product_code,
        products.kind as product_kind,
        products.size_kg,
        app_cells.source_column,
        app_cells.quantity,
        app_cells.load_id
    from app_cells
    inner join products
        on
            app_cells.source_column = products.app_column
            and products.brand = 'regular'
            and products.kind = 'cylinder'

)

select * from conformed
