{% macro postgres__taiwan_date(value, earliest=none, latest=none) -%}
    {{ postgres__taiwan_date_parsed(value, earliest, latest, 'parsed_date') }}
{%- endmacro %}
