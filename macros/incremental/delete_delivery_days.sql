{#- The pre-hook of each incremental delivery mart: delete the days it rebuilds. Deleting
    deliveries cascades to their items and bridge rows. -#}
{% macro delete_delivery_days(days) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where (client_code, delivery_date) in (
            select
                rebuilt.client_code,
                rebuilt.delivery_date
            from {{ days }} as rebuilt
        )
    {%- endif -%}
{%- endmacro %}
