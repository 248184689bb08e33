{#- The newest load the delivery marts have seen (-1 when they are not built: every row is
    newer). -#}
{% macro delivery_marts_watermark(deliveries) -%}
    {%- if deliveries is none -%}
        select -1::bigint as load_id
    {%- else -%}
        select coalesce(max(last_load_id), 0) as load_id
        from {{ deliveries }}
    {%- endif -%}
{%- endmacro %}
