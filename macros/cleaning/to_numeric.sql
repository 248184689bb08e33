{#- Text to numeric, or NULL when the text is not a plain decimal number (never an error). -#}
{% macro to_numeric(value) -%}
    case
        when {{ clean_text(value) }} ~ '^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$'
            then {{ clean_text(value) }}::numeric
    end
{%- endmacro %}
