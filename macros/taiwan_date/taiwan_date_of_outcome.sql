{% macro taiwan_date_of_outcome(outcome) -%}
    case when left({{ outcome }}, 1) <> '!' then cast({{ outcome }} as date) end
{%- endmacro %}
