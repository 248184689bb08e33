-- The cylinder inventory and metered supply points of each customer: one row per customer
-- and product with a quantity (cylinders, or supply points for a metered product).

with

clients as (

    select * from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

),

products as (

    select * from {{ ref('products') }}

),

unpivoted as (

    select
        clients.client_code,
        inventory.product_code,
        inventory.quantity
    from clients
    cross join
        lateral (
            values
            {%- for product in product_catalogue() %}
                (
                    '{{ product.product_code }}',
                    clients.{{ product_quantity_column(product.product_code) }}
                ){{ ',' if not loop.last }}
            {%- endfor %}
        ) as inventory (product_code, quantity)
    where inventory.quantity is not null and inventory.quantity <> 0

),

final as (

    select
        unpivoted.client_code,
        unpivoted.product_code,
        products.kind as product_kind,
        unpivoted.quantity,
        case products.kind when 'metered' then 'supply_points' else 'cylinders' end as unit
    from unpivoted
    inner join products on unpivoted.product_code = products.product_code

)

select * from final
