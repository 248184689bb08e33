{#- The items of a quarantined delivery row (quantities 'GAS-C20-R=-1,...') with the header
    each product has in the row's source: the history's column, or the app's. -#}
{% macro validation_items(row, products) -%}
    (
        select
            split_part(part, '=', 1) as code,
            split_part(part, '=', 2) as quantity,
            case
                when {{ row }}.source_system = 'app' then product.app_column
                else product.history_column
            end as header
        from regexp_split_to_table({{ row }}.quantities, ',') as part
        left join {{ products }} as product on split_part(part, '=', 1) = product.product_code
        where part <> ''
    )
{%- endmacro %}
