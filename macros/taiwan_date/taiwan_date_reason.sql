{% macro taiwan_date_reason(value, earliest=none, latest=none) -%}
    {%- if adapter is defined -%}
        {{ return(adapter.dispatch('taiwan_date_reason', 'luckygas')(value, earliest, latest)) }}
    {%- else -%}
        {{ return(postgres__taiwan_date_reason(value, earliest, latest)) }}
    {%- endif -%}
{%- endmacro %}
