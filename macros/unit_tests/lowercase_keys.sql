{#- A dict with its keys in lower case (dbt's unit-test fixtures name columns so). -#}
{% macro lowercase_keys(mapping) -%}
    {%- set lowered = {} -%}
    {%- for key in mapping -%}
        {%- do lowered.update({key | lower: mapping[key]}) -%}
    {%- endfor -%}
    {{ return(lowered) }}
{%- endmacro %}
