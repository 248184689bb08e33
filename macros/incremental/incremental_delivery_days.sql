{#- The incremental filter of a delivery mart's rows (macro delivery_mart_config): on an
    incremental run, only the days listed by `days` (int_delivery_days_to_rebuild). -#}
{% macro incremental_delivery_days(days) -%}
    {%- if is_incremental() -%}
        and (client_code, delivery_date) in (
            select
                rebuilt.client_code,
                rebuilt.delivery_date
            from {{ days }} as rebuilt
        )
    {%- endif -%}
{%- endmacro %}
