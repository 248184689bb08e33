{% macro postgres__taiwan_date_reason(value, earliest=none, latest=none) -%}
    {{ postgres__taiwan_date_parsed(value, earliest, latest, 'reason') }}
{%- endmacro %}
