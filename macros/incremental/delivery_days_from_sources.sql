{#- The client-days of the deliveries built from the sources listed in the CTE `sources`
    (source_file, source_sheet), read from the bridge delivery_sources (none when it is
    not built). -#}
{% macro delivery_days_from_sources(bridge, sources) -%}
    {%- if bridge is none -%}
        select
            null::text as client_code,
            null::date as delivery_date
        from {{ sources }}
        where false
    {%- else -%}
        select
            bridge.client_code,
            bridge.delivery_date
        from {{ bridge }} as bridge
        inner join {{ sources }} as sources
            on
                bridge.source_file = sources.source_file
                and bridge.source_sheet = sources.source_sheet
    {%- endif -%}
{%- endmacro %}
