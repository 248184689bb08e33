{#- Every non-zero quantity of every delivery source row, as (row, product code, quantity):
    the history's product columns and the app's cylinder sizes conformed to the codes of
    seeds/products.csv. Quantities are cylinders, or kg for metered (流量) products. Rows
    of every outcome are here (quarantined and merged rows too): the reconciliation of
    totals reads them. -#}
with

history as (

    select * from {{ ref('stg_delivery_history__deliveries') }}

),

app as (

    select * from {{ ref('stg_legacy_app__deliveries') }}

),

products as (

    select * from {{ ref('products') }}

),

history_cells as (

    select
        history.source_file,
        history.source_sheet,
        history.source_row,
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
        history_cells.quantity
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
        app_cells.quantity
    from app_cells
    inner join products
        on
            app_cells.source_column = products.app_column
            and products.brand = 'regular'
            and products.kind = 'cylinder'

)

select * from conformed
