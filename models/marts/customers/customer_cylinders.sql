-- The cylinder inventory and metered supply points of each customer: one row per customer
-- and product with a quantity (50KG ... 好運20 are cylinders, 流量* are supply points).
{%- set products = ['c50_r', 'c20_cm', 'c16_cm', 'c20_r', 'c16_r', 'c10_r', 'c04_r', 'c16_h',
                    'c10_p', 'c00_x', 'c20_h', 'f50_r', 'f20_r', 'f16_r', 'f20_h', 'f16_h'] %}

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
            {%- for p in products %}
                ('{{ "GAS-" ~ p | upper | replace("_", "-") }}', clients.qty_gas_{{ p }})
                {%- if not loop.last %},{% endif %}
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
